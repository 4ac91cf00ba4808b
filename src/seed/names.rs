//! One generated person for `ladder seed --users`: a name from small embedded
//! lists (surnames weighted so a few are common, as in real data), a username
//! like `jsmith4821`, an email `<username>@<domain>`, and a sign-up time spread
//! over the past four years, denser towards now.

use super::rng::Rng;
use crate::accounts::{Email, Username};

/// How far back `created_at` reaches.
const SPAN_SECS: i64 = 4 * 365 * 24 * 3600;
/// Share (per mille) of users seeded inactive.
const INACTIVE_PER_MILLE: u32 = 20;

/// One generated person.
pub(super) struct Generated {
    pub(super) username: String,
    pub(super) email: String,
    pub(super) display_name: String,
    pub(super) is_active: bool,
    pub(super) created_at: i64,
}

/// The embedded name lists with their cumulative weights.
pub(super) struct Names {
    last_cumulative: Vec<f64>,
    domain_cumulative: Vec<u32>,
}

impl Names {
    pub(super) fn new() -> Names {
        // Surnames are listed most common first; weight 1/rank^0.6 gives a long
        // tail: the first is about 5% of users, the last about 0.2%.
        let mut total = 0.0;
        let last_cumulative = LAST_NAMES
            .iter()
            .enumerate()
            .map(|(i, _)| {
                total += 1.0 / ((i + 1) as f64).powf(0.6);
                total
            })
            .collect();
        let mut sum = 0;
        let domain_cumulative = DOMAINS
            .iter()
            .map(|(_, w)| {
                sum += w;
                sum
            })
            .collect();
        Names {
            last_cumulative,
            domain_cumulative,
        }
    }

    pub(super) fn generate(&self, rng: &mut Rng, now: i64) -> Generated {
        let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
        let last = {
            let total = *self.last_cumulative.last().expect("surnames");
            let x = rng.unit() * total;
            let i = self.last_cumulative.partition_point(|&c| c <= x);
            LAST_NAMES[i.min(LAST_NAMES.len() - 1)]
        };
        let domain = {
            let total = *self.domain_cumulative.last().expect("domains");
            let x = rng.below(u64::from(total)) as u32;
            DOMAINS[self.domain_cumulative.partition_point(|&c| c <= x)].0
        };
        let f = ascii_key(first);
        let l = ascii_key(last);
        let suffix = match rng.below(10) {
            0 => String::new(),
            1 | 2 => rng.below(100).to_string(),
            3..=7 => (1000 + rng.below(9000)).to_string(),
            _ => rng.below(100_000).to_string(),
        };
        let initial = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
        let username = match rng.below(20) {
            0..=10 => format!("{}{l}{suffix}", initial(&f)),
            11..=14 => format!("{f}.{l}{suffix}"),
            15..=17 => format!("{f}{}{suffix}", initial(&l)),
            _ => format!("{f}_{l}{suffix}"),
        };
        debug_assert!(Username::parse(&username).is_ok(), "{username}");
        let email = format!("{username}@{domain}");
        debug_assert!(Email::parse(&email).is_ok_and(|e| e.as_str() == email));
        // Denser towards now, as sign-ups grow.
        let age = (rng.unit().powf(1.5) * SPAN_SECS as f64) as i64;
        Generated {
            username,
            email,
            display_name: format!("{first} {last}"),
            is_active: rng.per_mille() >= INACTIVE_PER_MILLE,
            created_at: now - age,
        }
    }
}

/// Lower-case ASCII letters only: `O'Brien` → `obrien`, `Zoë` → `zoe`.
fn ascii_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'a'..='z' => c,
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ą' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'ę' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'ı' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' | 'ń' => 'n',
            'ç' | 'ć' | 'č' => 'c',
            'ł' => 'l',
            'š' | 'ś' | 'ş' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'ý' => 'y',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            _ => continue,
        };
        out.push(folded);
    }
    out
}

#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura",
    "Edward", "Helen", "Jeffrey", "Sharon", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy",
    "Nicholas", "Angela", "Eric", "Anna", "Jonathan", "Ruth", "Stephen", "Brenda", "Larry",
    "Pamela", "Justin", "Nicole", "Scott", "Katherine", "Brandon", "Samantha", "Benjamin",
    "Christine", "Samuel", "Emma", "Gregory", "Catherine", "Alexander", "Debra", "Patrick",
    "Rachel", "Frank", "Carolyn", "Raymond", "Janet", "Jack", "Maria", "Dennis", "Olivia", "Jerry",
    "Heather", "Tyler", "Sophia", "Aaron", "Grace", "Jose", "Julia", "Noah", "Chloe", "Liam",
    "Zoë", "Lucas", "Mia", "Mateo", "Sofía", "Hugo", "Léa", "Lukas", "Hannah", "Jonas", "Ingrid",
    "Søren", "Astrid", "Björn", "Elif", "Mehmet", "Ayşe", "Ahmed", "Fatima", "Omar", "Leila",
    "Arjun", "Priya", "Rohan", "Ananya", "Wei", "Mei", "Hiroshi", "Yuki", "Min-jun", "Seo-yeon",
    "Kwame", "Amara", "Chidi", "Nia", "Diego", "Valentina", "Santiago", "Camila", "Mikhail",
    "Olga", "Piotr", "Agnieszka", "Sean", "Siobhan", "Ewan", "Isla", "Aisling", "Rhys",
];

/// Most common first: the generator weights them by rank.
#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner",
    "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales",
    "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey",
    "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks",
    "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell",
    "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes",
    "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander",
    "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes",
    "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray",
    "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods",
    "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker",
    "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez",
    "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Muñoz", "Hunt", "Hicks", "Holmes", "Palmer",
    "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills",
    "Meyer", "Rice", "Schmidt", "García", "Müller", "Schneider", "Fischer", "Weber", "Becker",
    "Dubois", "Lefèvre", "Moreau", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Kowalski",
    "Nowak", "Wiśniewski", "Novák", "Jensen", "Nielsen", "Hansen", "Andersson", "Johansson",
    "Larsen", "Ødegaard", "Virtanen", "Korhonen", "O'Brien", "O'Connor", "Byrne", "MacLeod",
    "Fraser", "Ivanov", "Petrov", "Kuznetsov", "Yılmaz", "Kaya", "Demir", "Singh", "Kumar",
    "Sharma", "Gupta", "Wang", "Li", "Zhang", "Liu", "Yang", "Huang", "Sato", "Suzuki",
    "Takahashi", "Tanaka", "Park", "Choi", "Okafor", "Mensah", "Okonkwo", "Abebe", "Haddad",
    "Khalil", "Nakamura-Wright", "Quintero",
];

/// Email domains and their weights: a few big providers and a tail of smaller ones.
#[rustfmt::skip]
const DOMAINS: &[(&str, u32)] = &[
    ("gmail.com", 300),
    ("outlook.com", 120),
    ("yahoo.com", 90),
    ("hotmail.com", 70),
    ("icloud.com", 60),
    ("proton.me", 40),
    ("fastmail.com", 20),
    ("gmx.de", 30),
    ("web.de", 20),
    ("orange.fr", 20),
    ("libero.it", 15),
    ("example.com", 50),
    ("example.org", 40),
    ("acme.io", 15),
    ("globex.com", 10),
    ("initech.net", 10),
    ("umbrella.co", 5),
    ("hooli.xyz", 5),
    ("university.edu", 40),
    ("mail.ladder.test", 5),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_users_are_valid_and_lower_case() {
        let names = Names::new();
        let mut rng = Rng::new(7);
        for _ in 0..20_000 {
            let p = names.generate(&mut rng, 1_800_000_000);
            let username = Username::parse(&p.username).unwrap();
            assert_eq!(username.key(), p.username);
            assert!(p.username.is_ascii(), "{}", p.username);
            assert_eq!(Email::parse(&p.email).unwrap().as_str(), p.email);
            assert!(p.display_name.contains(' '));
            assert!(p.created_at <= 1_800_000_000 && p.created_at > 1_800_000_000 - SPAN_SECS);
        }
    }

    #[test]
    fn every_name_folds_to_ascii_letters() {
        for name in FIRST_NAMES.iter().chain(LAST_NAMES) {
            let key = ascii_key(name);
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase()),
                "{name}"
            );
        }
        assert_eq!(ascii_key("O'Brien"), "obrien");
        assert_eq!(ascii_key("Ødegaard"), "odegaard");
    }
}
